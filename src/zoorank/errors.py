"""Exceptions raised by zoorank."""


class InputError(ValueError):
    """Bad input to a zoorank function: the message names the argument and the problem."""
