from charla.cli import main

main()
