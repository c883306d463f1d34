"""The model side: the Responses API client and the events it yields."""
