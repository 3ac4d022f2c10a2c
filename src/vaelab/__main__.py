from vaelab.cli import entry

entry()
