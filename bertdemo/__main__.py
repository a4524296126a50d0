import sys

from bertdemo.cli import main

sys.exit(main())
