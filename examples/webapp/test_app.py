"""The web app's tests, run by the pipeline's test step before the release goes live."""

import unittest

import app


class PageTests(unittest.TestCase):
    def test_the_page_greets(self) -> None:
        self.assertIn("<h1>Hi</h1>", app.page("Hi"))


if __name__ == "__main__":
    unittest.main()
