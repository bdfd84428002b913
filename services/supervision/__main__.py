from services.supervision.app import main

main()
