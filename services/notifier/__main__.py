from services.notifier.app import main

main()
