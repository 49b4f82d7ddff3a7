"""One sequence's generation: its state (`sequence`), sampling (`sampling`), stopping
(`stopping`), detokenizing (`detokenizer`), grammars (`grammar`), and the events it emits
(`events`)."""
