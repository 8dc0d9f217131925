"""The data layer: a task's rows, from local JSON Lines (`jsonl`), the bundled sample or the
Hugging Face Hub (`hub`: pinned once per sweep), selected and tokenized into splits a job trains
and evaluates on (`splits`), cached on disk for every job of a sweep (`cache`).

What the rows are (labels, text fields, languages) is the task's config (conf/task/*.yaml):
nothing here assumes a particular task."""
