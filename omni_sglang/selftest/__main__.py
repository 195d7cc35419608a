import sys

from omni_sglang.selftest.cli import main

sys.exit(main())
