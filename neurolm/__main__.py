import sys

from neurolm.cli import main

sys.exit(main())
