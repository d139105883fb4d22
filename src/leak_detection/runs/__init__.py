"""How a run behaves on its machine: one writing run at a time, atomic files, safe output paths, process settings."""
