from datakit.cli.app import main

main()
