"""The model: loading it (`loading`) or building the built-in tiny one (`tiny`), its text codec
(`codec`), its forward passes for one sequence (`runner`) or a padded batch (`batch_runner`),
and how a forward takes its KV cache (`cache`)."""
