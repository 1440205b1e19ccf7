"""The mechanics of a program, one package each: model, section, handlers, tables, routes, pages."""
