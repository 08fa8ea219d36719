/* Submits a form when one of its <select data-submit-on-change> changes (the language switch).
   A static file because the Content-Security-Policy allows no inline handlers. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.hasAttribute && field.hasAttribute("data-submit-on-change") && field.form) {
      field.form.submit();
    }
  });
})();
