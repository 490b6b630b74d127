from matching.scoring.command import run

run()
