"""`python -m medpubsub ...` is `medpubsub ...` (what the service images run)."""

from medpubsub.cli import main

raise SystemExit(main())
