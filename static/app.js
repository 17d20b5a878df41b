// Progressive enhancement only: every page works without this file.
// Keyboard shortcuts, inline editing and drag-and-drop land here with their features.
"use strict";
