from teamroom.cli import main

raise SystemExit(main())
