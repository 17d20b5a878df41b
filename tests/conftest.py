pytest_plugins = [
    "tests.fixtures.services",
    "tests.fixtures.profiles",
    "tests.fixtures.app",
    "tests.fixtures.browser",
    "tests.fixtures.mailbox",
    "tests.fixtures.database",
    "tests.fixtures.jobs",
]


def pytest_collection_modifyitems(config, items):
    # Playwright's sync API keeps an event loop running in the main thread while the
    # browser is open, which would break fixtures that call asyncio.run: browser last.
    items.sort(key=lambda item: item.get_closest_marker("browser") is not None)
