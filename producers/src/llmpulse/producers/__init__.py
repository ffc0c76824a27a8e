"""llmpulse producer SDK (capture is being built; see issue 3). Topic administration for now.

Example:
    >>> import llmpulse.producers
    >>> llmpulse.producers.__name__
    'llmpulse.producers'
"""

__all__: list[str] = []
