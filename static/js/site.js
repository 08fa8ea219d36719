/* Site-wide behaviour, kept out of the templates so a strict Content-Security-Policy needs no inline script. */
(function () {
  "use strict";
  document.addEventListener("change", function (event) {
    var field = event.target;
    if (field && field.hasAttribute && field.hasAttribute("data-autosubmit") && field.form) field.form.submit();
  });
})();
