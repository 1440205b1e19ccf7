"""The platform: the database, migrations, the HTTP app and the console's shell."""
