import sys

from edge_t2i.cli import main

sys.exit(main())
