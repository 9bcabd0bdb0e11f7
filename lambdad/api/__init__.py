"""The control and invoke API: HTTP in, a typed call to a service, HTTP out."""
