import sys

from omni_sglang.launch import main

sys.exit(main())
