from charla.cli.root import main

main()
