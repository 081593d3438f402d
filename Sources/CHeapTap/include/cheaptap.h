// The heap tap has no API of its own: it interposes malloc and friends (see tap.c).
