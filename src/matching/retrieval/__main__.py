from matching.retrieval.command import run

run()
