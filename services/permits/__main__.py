from services.permits.app import main

main()
