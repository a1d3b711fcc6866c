import sys

from djtui.cli import main

sys.exit(main())
