// Placeholder entry module until the UI's pages land: names the page it runs on.
document.getElementById('app').textContent = document.title;
