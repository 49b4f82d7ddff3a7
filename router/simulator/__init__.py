"""The simulator: a request trace replayed on a virtual clock against virtual workers, through
the router's registry and routing function and a real autoscaling policy."""
