"""The model server, TGI's "shard": the process (`process`), how it is started (`launch`), the
messages between it and the HTTP server (`wire`), and the HTTP server's side of it (`engine`)."""
