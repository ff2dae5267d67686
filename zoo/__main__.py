from zoo.cli.app import main

main()
