"""The admin's pages: thin views over the modules that talk to the APIs."""
