"""``python -m frontier_provider.demo``: run the financial close on the demo ledger."""

from frontier_provider.demo.setup import main

raise SystemExit(main())
