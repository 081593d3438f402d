// Header-only: the layout of the heap tap's shared table (include/mshmon_tap.h).
