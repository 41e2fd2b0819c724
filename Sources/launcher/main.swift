import AttnaxCLI

// The `attnax` executable: every command lives in the AttnaxCLI library (tested there).
Attnax.main()
