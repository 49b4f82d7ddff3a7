from tgi_serverless.cli import main

raise SystemExit(main())
