"""What migrations install: the declarative base, the tenant mixin, policies and roles."""
