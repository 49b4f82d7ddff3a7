"""State several routers share (docs/scaleout.md): the seam (`router.state.shared`), its
in-memory and Redis stores, and the loop that keeps a router's memory in step with them."""
