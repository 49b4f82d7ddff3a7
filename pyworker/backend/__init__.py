"""The backend as the PyWorker sees it: the probe (health, /info, the start-up benchmark), the
supervisor that moves the worker through its states, and the backend's log."""
