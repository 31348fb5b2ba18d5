"""The menu engine (screens as data plus small async handlers) and the menus it serves."""
