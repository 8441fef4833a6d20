"""Flows defined as methods: instance methods, classmethods and staticmethods.

Put ``@flow`` above ``@classmethod`` / ``@staticmethod``. ``self`` and ``cls`` are bound as
usual and are not recorded as parameters.

Adapted from Prefect 3's "How to write and run a workflow" (Define a workflow).
"""

from wfkit import flow


class Greeter:
    def __init__(self, greeting: str = "Hello") -> None:
        self.greeting = greeting

    @flow
    def from_instance(self) -> str:
        return f"{self.greeting}, from an instance method!"

    @flow
    @classmethod
    def from_class(cls) -> str:
        return f"Hello, from a class method of {cls.__name__}!"

    @flow
    @staticmethod
    def from_static() -> str:
        return "Hello, from a static method!"


if __name__ == "__main__":
    print(Greeter("Howdy").from_instance())
    print(Greeter.from_class())
    print(Greeter.from_static())
