print("kubeshark")
