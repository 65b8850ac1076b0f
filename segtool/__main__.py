from segtool.cli import main

raise SystemExit(main())
