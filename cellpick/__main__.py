from cellpick.cli import main

main()
