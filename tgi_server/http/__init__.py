"""TGI's HTTP API on aiohttp: the application (`app`), TGI's route handlers (`routes`), reading
request bodies (`bodies`), TGI's response bodies and headers (`wire`), non-streamed responses
(`responses`), streamed ones (`streaming`), and the application's state (`app_keys`)."""
