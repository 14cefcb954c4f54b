from fastfnn.cli import main

raise SystemExit(main())
