// Administration pages: ask before destructive form posts. A form opts in with a data-confirm
// attribute holding the question; without script the form simply posts (the server still checks
// everything). No inline script anywhere: the Content-Security-Policy forbids it.
'use strict';
document.addEventListener('submit', (event) => {
    const form = event.target;
    if (!(form instanceof HTMLFormElement)) return;
    const question = form.dataset.confirm;
    if (question && !window.confirm(question)) {
        event.preventDefault();
    }
});
