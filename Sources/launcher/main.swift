print("attnax")
